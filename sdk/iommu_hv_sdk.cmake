# iommu-hv guest SDK: build an EFI payload (a UEFI application or boot-service driver run as
# the hypervisor's guest) against sdk/include with gnu-efi. From your own CMakeLists.txt:
#
#   cmake_minimum_required(VERSION 3.16)
#   project(mydriver C)
#   include(/path/to/iommu-hv/sdk/iommu_hv_sdk.cmake)
#   iommu_hv_add_payload(mydriver SOURCES mydriver.c)      # -> build/MYDRIVER.EFI
#
# then: scripts/run.sh --payload build/MYDRIVER.EFI   (docs/guest-sdk.md)
#
# iommu_hv_add_payload(NAME SOURCES src... [OUTPUT FILE.EFI] [DRIVER] [INCLUDES dir...])
#   NAME      the CMake target; the image is ${CMAKE_BINARY_DIR}/<NAME in upper case>.EFI
#             unless OUTPUT names it
#   DRIVER    a boot-service driver (PE subsystem 11) instead of an application (10)
#   INCLUDES  more include folders for your sources
#   OBJECTS   object libraries (add_library(... OBJECT ...)) linked into the image too, for
#             code compiled with flags of its own
# The compile flags are the project's own for firmware code (IOMMU_HV_EFI_C_FLAGS below);
# the link is gnu-efi's crt0 and linker script, and objcopy makes the PE32+ image.
include_guard(GLOBAL)

set(IOMMU_HV_SDK_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(_iommu_hv_root ${CMAKE_CURRENT_LIST_DIR} DIRECTORY)
# The public include path: sdk/include (iommu_hv/*.h) and ddi/include, where the wdm and
# hypercall declarations the SDK forwards to are shared with the hypervisor.
set(IOMMU_HV_SDK_INCLUDE_DIRS ${IOMMU_HV_SDK_DIR}/include ${_iommu_hv_root}/ddi/include)
set(IOMMU_HV_GNU_EFI_INCLUDE /usr/include/efi CACHE PATH "gnu-efi's headers")
set(IOMMU_HV_GNU_EFI_LIB /usr/lib CACHE PATH "gnu-efi's crt0-efi-x86_64.o, elf_x86_64_efi.lds, libefi, libgnuefi")
set(IOMMU_HV_EFI_C_FLAGS
  -ffreestanding -fno-stack-protector -fno-stack-check -fpic -fshort-wchar
  -mno-red-zone -mgeneral-regs-only -maccumulate-outgoing-args
  -DGNU_EFI_USE_MS_ABI -O2 -g)

function(iommu_hv_add_payload name)
  cmake_parse_arguments(P "DRIVER" "OUTPUT" "SOURCES;INCLUDES;OBJECTS" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "iommu_hv_add_payload(${name}): no SOURCES")
  endif()
  foreach(f ${IOMMU_HV_GNU_EFI_INCLUDE}/efi.h ${IOMMU_HV_GNU_EFI_LIB}/crt0-efi-x86_64.o
            ${IOMMU_HV_GNU_EFI_LIB}/elf_x86_64_efi.lds)
    if(NOT EXISTS ${f})
      message(FATAL_ERROR "gnu-efi is missing (${f}): apt-get install gnu-efi, or set IOMMU_HV_GNU_EFI_INCLUDE/_LIB")
    endif()
  endforeach()
  if(NOT P_OUTPUT)
    string(TOUPPER ${name}.EFI P_OUTPUT)
  endif()
  set(subsystem 10)
  if(P_DRIVER)
    set(subsystem 11)
  endif()
  set(lib ${IOMMU_HV_GNU_EFI_LIB})
  add_library(${name}_objs OBJECT ${P_SOURCES})
  target_include_directories(${name}_objs PRIVATE ${P_INCLUDES} ${IOMMU_HV_SDK_INCLUDE_DIRS}
    ${IOMMU_HV_GNU_EFI_INCLUDE} ${IOMMU_HV_GNU_EFI_INCLUDE}/x86_64)
  target_compile_options(${name}_objs PRIVATE ${IOMMU_HV_EFI_C_FLAGS})
  # gnu-efi's headers need GNU C: -std=gnu11.
  set_target_properties(${name}_objs PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
  set(extra)
  set(extra_deps)
  foreach(o ${P_OBJECTS})
    list(APPEND extra $<TARGET_OBJECTS:${o}>)
    list(APPEND extra_deps ${o} $<TARGET_OBJECTS:${o}>)
  endforeach()
  set(so ${CMAKE_CURRENT_BINARY_DIR}/${name}.so)
  set(efi ${CMAKE_BINARY_DIR}/${P_OUTPUT})
  add_custom_command(
    OUTPUT ${so}
    COMMAND ld -nostdlib -znocombreloc -zdefs -T ${lib}/elf_x86_64_efi.lds -shared -Bsymbolic
            -L${lib} ${lib}/crt0-efi-x86_64.o $<TARGET_OBJECTS:${name}_objs> ${extra} -o ${so} -lefi -lgnuefi
    DEPENDS ${name}_objs $<TARGET_OBJECTS:${name}_objs> ${extra_deps}
    COMMAND_EXPAND_LISTS
    COMMENT "Linking ${name}.so")
  add_custom_command(
    OUTPUT ${efi}
    COMMAND objcopy -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela -j .rel.*
            -j .rela.* -j .reloc --target efi-app-x86_64 --subsystem=${subsystem} ${so} ${efi}
    DEPENDS ${so}
    COMMENT "Converting to PE32+ ${efi}")
  add_custom_target(${name} ALL DEPENDS ${efi})
endfunction()
