# Imports a file with the builtins that newer Nix has and the installed one may lack, so that
# the real nixpkgs `lib/` (which wants Nix >= 2.18) evaluates under Debian 12's Nix 2.8. Every
# file it imports sees the same builtins. Where the running Nix has a builtin, its own is used.
let
  polyfills = {
    # String-context bookkeeping only: the offline checks never build anything.
    addDrvOutputDependencies = s: s;
    # Nix 2.14: the type of one directory entry, from its parent's listing; a store path itself
    # (a flake's root) cannot be listed in pure evaluation, and `p/.` exists only for a directory.
    readFileType = path:
      if dirOf (toString path) == builtins.storeDir then
        (if builtins.pathExists "${toString path}/." then "directory" else "regular")
      else (builtins.readDir (dirOf path)).${baseNameOf path};
  };
  scope = {
    builtins = polyfills // builtins;
    import = scopedImport scope;
  };
in
scopedImport scope
