# BOOTAA64.EFI, the loader for Arm (docs/design.md), cross-compiled with aarch64-linux-gnu-gcc
# and built without gnu-efi (Debian's arm64 gnu-efi cannot be installed beside the amd64
# one): the loader's sources and the freestanding core (libiommu_core_aarch64.a) are linked
# as a position-independent executable at address 0 (image.lds), which objcopy turns into a
# PE32+ EFI application; efi_entry.S applies the image's own relocations at entry. The image
# is padded to a multiple of 512 bytes: the firmware refuses others ("Unsupported").
# Included from the top-level CMakeLists.txt with AARCH64_CC, AARCH64_CC_INCLUDE and
# IOMMU_CORE_AARCH64 set.
find_program(AARCH64_LD aarch64-linux-gnu-ld REQUIRED)
find_program(AARCH64_OBJCOPY aarch64-linux-gnu-objcopy REQUIRED)

set(ARM64_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BOOT_DIR ${PROJECT_SOURCE_DIR}/boot)
set(ARM64_LOADER_SOURCES
  ${ARM64_DIR}/efi_entry.S ${ARM64_DIR}/self_relocate.c ${ARM64_DIR}/compiler_support.c
  ${ARM64_DIR}/main.c ${ARM64_DIR}/uefi_arm64.c ${ARM64_DIR}/remap_setup.c ${ARM64_DIR}/edu_demo.c
  ${ARM64_DIR}/guest_resume.c ${BOOT_DIR}/loader/config.c ${BOOT_DIR}/common/arm64_cpus.c ${BOOT_DIR}/common/arm64_cpus.S
  ${BOOT_DIR}/loader/discovery.c ${BOOT_DIR}/loader/identity_map.c ${BOOT_DIR}/loader/expected_faults.c
  ${BOOT_DIR}/common/report.c ${BOOT_DIR}/common/serial_pl011.c ${BOOT_DIR}/common/edu.c
  # the hypervisor: the neutral half and the EL2 half
  ${BOOT_DIR}/hypervisor/core.c ${BOOT_DIR}/hypervisor/remapping.c ${BOOT_DIR}/hypervisor/el2/el2.c
  ${BOOT_DIR}/hypervisor/el2/el2_trap.c ${BOOT_DIR}/hypervisor/el2/el2_vectors.S
  ${BOOT_DIR}/hypervisor/hv_channel.c ${BOOT_DIR}/hypervisor/el2/hv_channel_pl011.c
  # the guest's self-test, run by the firmware's image of this one
  ${BOOT_DIR}/guest/selftest/selftest_arm64.c ${BOOT_DIR}/guest/selftest/selftest_arm64_traps.S)
set(arm64_loader_objects)
foreach(src ${ARM64_LOADER_SOURCES})
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${src})
  string(REPLACE "/" "_" obj ${rel})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/aarch64/${obj}.o)
  set(extra)
  if(src MATCHES "compiler_support.c$")
    set(extra -fno-tree-loop-distribute-patterns)
  endif()
  add_custom_command(OUTPUT ${obj}
    COMMAND ${AARCH64_CC} -std=c11 -Wall -Wextra -Werror -O2 -g -ffreestanding -nostdinc
            -isystem ${AARCH64_CC_INCLUDE} -mgeneral-regs-only -mno-outline-atomics -fpic -fno-stack-protector -fshort-wchar
            -mstrict-align ${extra}
            -I${BOOT_DIR} -I${PROJECT_SOURCE_DIR}/iommu/include -I${PROJECT_SOURCE_DIR}/ddi/include
            -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src} DEPFILE ${obj}.d
    COMMENT "aarch64: ${rel}")
  list(APPEND arm64_loader_objects ${obj})
endforeach()

set(ARM64_SO ${CMAKE_CURRENT_BINARY_DIR}/aarch64/bootaa64.so)
set(ARM64_EFI ${CMAKE_BINARY_DIR}/BOOTAA64.EFI)
add_custom_command(OUTPUT ${ARM64_SO}
  COMMAND ${AARCH64_LD} -nostdlib -static -pie --no-dynamic-linker -z text -z norelro --no-warn-rwx-segments
          -T ${ARM64_DIR}/image.lds ${arm64_loader_objects} ${IOMMU_CORE_AARCH64} -o ${ARM64_SO}
  DEPENDS ${arm64_loader_objects} ${IOMMU_CORE_AARCH64} ${ARM64_DIR}/image.lds
  COMMENT "aarch64: linking bootaa64.so")
add_custom_command(OUTPUT ${ARM64_EFI}
  COMMAND ${AARCH64_OBJCOPY} -j .text -j .data -j .dynamic -j .rela -j .reloc --target efi-app-aarch64
          --subsystem=10 ${ARM64_SO} ${ARM64_EFI}
  COMMAND truncate -s %512 ${ARM64_EFI}
  DEPENDS ${ARM64_SO}
  COMMENT "aarch64: BOOTAA64.EFI")
add_custom_target(bootaa64 ALL DEPENDS ${ARM64_EFI})

include(${PROJECT_SOURCE_DIR}/boot/guest/arm64_payloads.cmake)
