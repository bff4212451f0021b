#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs to build, run and test.
#
# Each requirement is checked by a file it provides, so the check costs a few stat() calls
# and no package-manager query: when everything is present the script returns at once.
# As root it installs what is missing with apt-get; otherwise it names what is missing and
# the command that would install it, and exits 1.
set -euo pipefail

# package  file-that-proves-it-is-installed
requirements=(
  "cmake            /usr/bin/cmake"
  "make             /usr/bin/make"
  "gcc              /usr/bin/gcc"
  "binutils         /usr/bin/objcopy"
  "gcc-aarch64-linux-gnu        /usr/bin/aarch64-linux-gnu-gcc"
  "binutils-aarch64-linux-gnu   /usr/bin/aarch64-linux-gnu-objcopy"
  "gnu-efi          /usr/include/efi/efi.h"
  "libcmocka-dev    /usr/include/cmocka.h"
  "qemu-system-x86  /usr/bin/qemu-system-x86_64"
  "qemu-system-arm  /usr/bin/qemu-system-aarch64"
  "qemu-efi-aarch64 /usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
  "ovmf             /usr/share/OVMF/OVMF_CODE_4M.fd"
  "acpica-tools     /usr/bin/iasl"
  "python3          /usr/bin/python3"
)

# gnu-efi for arm64, which the Arm guest images (DDISHIM, FAULTINJ, HOSTILE for aarch64) are
# built with: it cannot be installed beside the amd64 one (both own /usr/lib/libefi.a), so its
# .deb, fetched and verified by apt (the arm64 architecture added to dpkg's list, no arm64
# package installed), is unpacked here. The CMake cache variable IOMMU_GNU_EFI_ARM64 names it.
gnu_efi_arm64=/opt/iommu-hv/gnu-efi-arm64
gnu_efi_arm64_ready() { [[ -e $gnu_efi_arm64/usr/include/efi/aarch64/efibind.h && -e $gnu_efi_arm64/usr/lib/crt0-efi-aarch64.o ]]; }
install_gnu_efi_arm64() {
  local tmp
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt fetches as its own user
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  (cd "$tmp" && { apt-get download gnu-efi:arm64 >/dev/null 2>&1 || { apt-get update -qq && apt-get download -q gnu-efi:arm64; }; })
  mkdir -p "$gnu_efi_arm64"
  dpkg-deb -x "$tmp"/gnu-efi_*_arm64.deb "$gnu_efi_arm64"
  rm -rf "$tmp"
}

missing=()
for req in "${requirements[@]}"; do
  read -r pkg file <<<"$req"
  [[ -e $file ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)) && gnu_efi_arm64_ready; then
  exit 0
fi

if ((${#missing[@]} == 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: gnu-efi for arm64 is missing: as root, scripts/bootstrap.sh unpacks it into $gnu_efi_arm64" >&2
    exit 1
  fi
  echo "bootstrap: unpacking gnu-efi for arm64 into $gnu_efi_arm64" >&2
  export DEBIAN_FRONTEND=noninteractive
  install_gnu_efi_arm64
  gnu_efi_arm64_ready || { echo "bootstrap: gnu-efi for arm64 still missing in $gnu_efi_arm64" >&2; exit 1; }
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
  echo "bootstrap: install them as root with: apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; refresh once and retry on a stale mirror index.
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

still=()
for req in "${requirements[@]}"; do
  read -r pkg file <<<"$req"
  [[ -e $file ]] || still+=("$pkg ($file)")
done
if ((${#still[@]})); then
  echo "bootstrap: still missing after install: ${still[*]}" >&2
  exit 1
fi
gnu_efi_arm64_ready || install_gnu_efi_arm64
gnu_efi_arm64_ready || { echo "bootstrap: gnu-efi for arm64 still missing in $gnu_efi_arm64" >&2; exit 1; }
