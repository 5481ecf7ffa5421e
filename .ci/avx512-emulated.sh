#!/usr/bin/env bash
# nabla's AVX-512 kernels, run on an emulated AVX-512 CPU.
#
# The machines this project runs on are sometimes AVX2-only, where tests/simd.rs can only report
# its AVX-512 cases as skipped. This script runs those tests (and the library's simd:: unit
# tests) where AVX-512 exists: in Bochs, Debian's x86 emulator, as a Skylake-X (AVX-512 F, CD,
# BW, DQ, VL), booting Debian's kernel with an initramfs that holds busybox and the statically
# linked test binaries. It fails unless the guest kernel enabled AVX-512, every test passed and no
# AVX-512 case was skipped.
#
# Bochs 2.7 reports the standard-format XSAVE size for the compacted format (CPUID 0xD.1 EBX), so
# Linux would turn XSAVE off (and with it AVX); the guest is booted with XSAVEC and XSAVES hidden
# (clearcpuid=321,323) so that it uses the standard format, whose sizes Bochs reports right.
#
# Usage: .ci/avx512-emulated.sh   (as root or with sudo; about 3 minutes of emulation)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
need=(bochs bochsbios vgabios busybox-static isolinux syslinux-common xorriso cpio)
if ! dpkg -s "${need[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

work="$(mktemp -d)"
echo "emulation work folder: $work"

# Debian's current kernel: the package that linux-image-amd64 depends on.
kernel_pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
if [ -z "$kernel_pkg" ]; then
  $SUDO apt-get update -q
  kernel_pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
fi
(cd "$work" && apt-get download "$kernel_pkg" 2>&1 | tail -1)
dpkg-deb -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
vmlinuz="$(ls "$work"/kernel/boot/vmlinuz-* | head -1)"

# The test binaries, linked statically so that the initramfs needs no libraries.
target=x86_64-unknown-linux-gnu
build() {
  RUSTFLAGS="-C target-feature=+crt-static" cargo test --release --target "$target" \
    --no-run --message-format=json "$@" |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | tail -1
}
simd_tests="$(build -p nabla --test simd)"
lib_tests="$(build -p nabla --lib)"

root="$work/root"
mkdir -p "$root/bin" "$work/iso/isolinux"
cp /bin/busybox "$root/bin/busybox"
cp "$simd_tests" "$root/simd-tests"
cp "$lib_tests" "$root/lib-tests"
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
echo "GUEST-FLAGS $(/bin/busybox grep -m1 '^flags' /proc/cpuinfo | /bin/busybox grep -o 'avx512[a-z]*' | /bin/busybox tr '\n' ' ')"
/simd-tests --test-threads 1 --nocapture
echo "GUEST-EXIT simd-tests $?"
/lib-tests --test-threads 1 --nocapture simd::
echo "GUEST-EXIT lib-tests $?"
/bin/busybox sleep 2
/bin/busybox poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/iso/initrd.gz"
cp "$vmlinuz" "$work/iso/vmlinuz"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$work/iso/isolinux/"
cat >"$work/iso/isolinux/isolinux.cfg" <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz console=ttyS0,115200 loglevel=3 mitigations=off panic=-1 clearcpuid=321,323
EOF
xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table "$work/iso"

cat >"$work/bochsrc" <<EOF
megs: 1024
cpu: model=corei7_skylake_x, count=1, ips=400000000
romimage: file=\$BXSHARE/BIOS-bochs-latest
vgaromimage: file=\$BXSHARE/VGABIOS-lgpl-latest
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$work/serial.log
display_library: rfb, options="timeout=0"
clock: sync=none, time0=local
log: $work/bochs.log
panic: action=fatal
error: action=report
info: action=ignore
debug: action=ignore
EOF

# Debian's Bochs is built with its debugger: "c" starts the machine, "quit" ends Bochs after the
# guest powers off.
start=$(date +%s)
printf 'c\nquit\n' | timeout 900 bochs -q -f "$work/bochsrc" >"$work/bochs.out" 2>&1 || true
echo "emulation took $(($(date +%s) - start)) s"
serial="$work/serial.log"
grep -a -E 'GUEST-|^test |SKIPPED|test result|panicked' "$serial" || true

fail() {
  echo "FAIL: $1 (serial console: $serial; Bochs log: $work/bochs.log)" >&2
  exit 1
}
[ -f "$serial" ] || fail "the emulated machine wrote nothing"
grep -a -q 'GUEST-FLAGS .*avx512f' "$serial" || fail "the guest kernel did not enable AVX-512"
grep -a -q 'GUEST-EXIT simd-tests 0' "$serial" || fail "tests/simd.rs failed or did not finish"
grep -a -q 'GUEST-EXIT lib-tests 0' "$serial" || fail "the simd:: unit tests failed or did not finish"
if grep -a -q 'SKIPPED level avx512' "$serial"; then fail "an AVX-512 case was skipped"; fi
passed="$(grep -a -c -E '^test .* ok.?$' "$serial")"
echo "AVX-512 under emulation: $passed tests passed, none skipped"
