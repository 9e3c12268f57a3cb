#!/opt/busybox/bin/sh
# PID 1 of the hls-lab origin MicroVM (busybox ash). Written into the initramfs as /init by
# `hls-lab microvm build`; see docs/microvm.md.
#
# 1. mounts proc, sys, devtmpfs and tmpfs;
# 2. loads the kernel modules listed in /etc/hls-lab/modules (virtio, ACPI button, evdev);
# 3. configures eth0 from the kernel command line: hls.ip=ADDR/LEN hls.gw=ADDR;
# 4. starts acpid, which turns the ACPI power button (qemu's `system_powerdown`) into SIGTERM
#    for this script;
# 5. runs hls-origin on 0.0.0.0:17080 (exporters :9100, :9113) with hls.profile=, hls.source=,
#    hls.width=, hls.height=;
# 6. on SIGTERM/SIGINT (or when hls-origin exits) stops hls-origin with SIGTERM, waits for it,
#    syncs and powers off. Nobody logs in: there is no getty, no shell on the console, no
#    password and no key anywhere in the image.

export PATH=/opt/busybox/bin:/usr/sbin:/usr/bin
export HOME=/root

say() { echo "hls-lab: [$(cut -d' ' -f1 /proc/uptime)s] $*"; }

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /tmp
mount -t tmpfs -o nosuid,nodev,mode=0755 run /run
ln -sf /proc/self/fd /dev/fd
say "init started"

while read -r module; do
    [ -n "$module" ] || continue
    insmod "/usr/lib/hls-lab/modules/$module" || say "insmod $module failed"
done < /etc/hls-lab/modules

net=none ip= gw= profile=default source=encode width= height=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        hls.net=*) net="${arg#hls.net=}" ;;
        hls.ip=*) ip="${arg#hls.ip=}" ;;
        hls.gw=*) gw="${arg#hls.gw=}" ;;
        hls.profile=*) profile="${arg#hls.profile=}" ;;
        hls.source=*) source="${arg#hls.source=}" ;;
        hls.width=*) width="${arg#hls.width=}" ;;
        hls.height=*) height="${arg#hls.height=}" ;;
    esac
done

hostname hls-origin-vm
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -n "$ip" ]; then
    ip link set eth0 up && ip addr add "$ip" dev eth0 || say "cannot configure eth0 with $ip"
    [ -z "$gw" ] || ip route add default via "$gw" || say "cannot add default route via $gw"
fi
say "network $net: eth0 $ip gateway ${gw:-none}"

acpid -c /etc/acpi -l /dev/null

set -- serve --profile "$profile" --source "$source" \
    --listen 0.0.0.0:17080 --node-exporter 0.0.0.0:9100 --nginx-exporter 0.0.0.0:9113 \
    --work-dir /dev/shm --cache-dir /var/cache/hls-origin --ready-timeout 300s \
    --ffmpeg /usr/bin/ffmpeg --nginx /usr/sbin/nginx \
    --node-exporter-bin /usr/bin/prometheus-node-exporter \
    --nginx-exporter-bin /usr/bin/prometheus-nginx-exporter
[ -z "$width" ] || set -- "$@" --width "$width"
[ -z "$height" ] || set -- "$@" --height "$height"

power_off() {
    say "power off requested: stopping hls-origin"
    kill -TERM "$origin" 2>/dev/null
    i=0
    while kill -0 "$origin" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$origin" 2>/dev/null; then
        say "hls-origin still running after 10 s: SIGKILL"
        kill -KILL "$origin" 2>/dev/null
    fi
    sync
    say "powering off"
    poweroff -f
}
trap power_off TERM INT USR2

say "starting hls-origin $*"
# Through a pipe, not the console tty: hls-origin colours its log on a terminal.
mkfifo /run/origin-log
cat /run/origin-log &
HLS_ORIGIN_LOG=info /usr/bin/hls-origin "$@" > /run/origin-log 2>&1 &
origin=$!

while :; do
    wait "$origin"
    status=$?
    if ! kill -0 "$origin" 2>/dev/null; then
        say "hls-origin exited with status $status: powering off"
        sync
        poweroff -f
    fi
done
