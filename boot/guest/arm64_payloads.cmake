# The guest's UEFI images for Arm (build/aarch64/*.EFI): the same sources as the x86 ones
# (boot/CMakeLists.txt), cross-compiled with aarch64-linux-gnu-gcc against gnu-efi for arm64,
# which scripts/bootstrap.sh unpacks into IOMMU_GNU_EFI_ARM64 (Debian's arm64 gnu-efi cannot
# be installed beside the amd64 one). gnu-efi's aarch64 crt0 carries the PE header itself:
# the link is its linker script, and objcopy -O binary writes the image, padded to a
# multiple of 512 bytes (the firmware refuses others as unsupported).
# Included from boot/loader/arm64/image.cmake, with AARCH64_CC and AARCH64_CC_INCLUDE set.
set(IOMMU_GNU_EFI_ARM64 /opt/iommu-hv/gnu-efi-arm64 CACHE PATH "gnu-efi for arm64, unpacked (scripts/bootstrap.sh)")
set(_gefi ${IOMMU_GNU_EFI_ARM64}/usr)
foreach(f ${_gefi}/include/efi/aarch64/efibind.h ${_gefi}/lib/crt0-efi-aarch64.o ${_gefi}/lib/elf_aarch64_efi.lds)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "gnu-efi for arm64 is missing (${f}): run scripts/bootstrap.sh as root")
  endif()
endforeach()

# arm64_add_payload(NAME FILE SUBSYSTEM SOURCES...): build/aarch64/FILE, SUBSYSTEM 10 for an
# application, 11 for a boot-service driver; boot/ is the include root as for the x86 images.
function(arm64_add_payload name file subsystem)
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/aarch64/${name})
  set(objects)
  foreach(src ${ARGN})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${src})
    string(REPLACE "/" "_" obj ${rel})
    set(obj ${CMAKE_BINARY_DIR}/aarch64/${name}/${obj}.o)
    add_custom_command(OUTPUT ${obj}
      COMMAND ${AARCH64_CC} -std=gnu11 -Wall -Wextra -Werror -O2 -g -ffreestanding -fno-stack-protector -fpic
              -fshort-wchar -mgeneral-regs-only -mno-outline-atomics -mstrict-align
              -I${PROJECT_SOURCE_DIR}/boot -I${PROJECT_SOURCE_DIR}/iommu/include -I${PROJECT_SOURCE_DIR}/ddi/include
              -I${PROJECT_SOURCE_DIR}/sdk/include -I${_gefi}/include/efi -I${_gefi}/include/efi/aarch64
              -MD -MF ${obj}.d -c ${src} -o ${obj}
      DEPENDS ${src} DEPFILE ${obj}.d
      COMMENT "aarch64: ${rel} (${file})")
    list(APPEND objects ${obj})
  endforeach()
  set(so ${CMAKE_BINARY_DIR}/aarch64/${name}/${name}.so)
  set(efi ${CMAKE_BINARY_DIR}/aarch64/${file})
  add_custom_command(OUTPUT ${so}
    COMMAND ${AARCH64_LD} -nostdlib -znocombreloc -T ${_gefi}/lib/elf_aarch64_efi.lds -shared -Bsymbolic
            --defsym=EFI_SUBSYSTEM=${subsystem} --no-warn-rwx-segments -L${_gefi}/lib ${_gefi}/lib/crt0-efi-aarch64.o
            ${objects} -o ${so} -lefi -lgnuefi
    DEPENDS ${objects}
    COMMENT "aarch64: linking ${name}.so")
  add_custom_command(OUTPUT ${efi}
    COMMAND ${AARCH64_OBJCOPY} -j .text -j .sdata -j .data -j .dynamic -j .rodata -j .rel -j .rela -j .rel.*
            -j .rela.* -j .reloc -O binary ${so} ${efi}
    COMMAND truncate -s %512 ${efi}
    DEPENDS ${so}
    COMMENT "aarch64: ${file}")
  add_custom_target(${name}_aarch64 ALL DEPENDS ${efi})
endfunction()

set(_boot ${PROJECT_SOURCE_DIR}/boot)
set(_guest_lib ${_boot}/guest/lib/guest.c ${_boot}/guest/lib/guest_console.c ${_boot}/common/edu.c
               ${_boot}/common/report.c ${_boot}/common/serial_pl011.c ${PROJECT_SOURCE_DIR}/iommu/lib/fmt.c)
arm64_add_payload(ddishim DDISHIM.EFI 11
  ${_boot}/guest/ddishim/shim_driver.c ${PROJECT_SOURCE_DIR}/ddi/shim.c ${PROJECT_SOURCE_DIR}/ddi/interface_tables.c)
arm64_add_payload(faultinj FAULTINJ.EFI 10 ${_boot}/guest/faultinj/faultinj.c ${_boot}/scenario/scenario.c ${_guest_lib})
arm64_add_payload(hostile HOSTILE.EFI 10 ${_boot}/guest/hostile/hostile_arm64.c ${_boot}/guest/hostile/hostile_arm64_traps.S ${_guest_lib})
