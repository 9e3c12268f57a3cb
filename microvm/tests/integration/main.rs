//! Integration tests of the origin MicroVM (real qemu, real kernel); added in a later commit.
