#!/usr/bin/env bash
# Installs the C library into a prefix, the way C and CMake users expect:
#     DIR/lib/libkfacpinn.so.X.Y.Z   (SONAME libkfacpinn.so.X), libkfacpinn.so.X and libkfacpinn.so links
#     DIR/lib/libkfacpinn_mpi.so.X.Y.Z and links, when OpenMPI's mpicc is there
#     DIR/include/kfacpinn.h (and kfacpinn_mpi.h)
#     DIR/lib/pkgconfig/kfacpinn.pc (and kfacpinn-mpi.pc)
#     DIR/lib/cmake/kfacpinn/kfacpinnConfig.cmake, kfacpinnConfigVersion.cmake
#     DIR/share/kfacpinn/install_manifest.txt (what --uninstall removes)
#
#     scripts/install.sh --prefix DIR        builds (swift build -c release -Xswiftc -static-stdlib,
#                                            in .build-dist) and installs
#     scripts/install.sh --prefix DIR --uninstall
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="" uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        *) echo "usage: $0 --prefix DIR [--uninstall]"; exit 2 ;;
    esac
done
[ -n "$prefix" ] || { echo "usage: $0 --prefix DIR [--uninstall]"; exit 2; }
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
manifest="$prefix/share/kfacpinn/install_manifest.txt"

if [ "$uninstall" = 1 ]; then
    [ -f "$manifest" ] || { echo "no kfacpinn installation in $prefix ($manifest missing)"; exit 1; }
    while read -r f; do rm -f "$prefix/$f"; done < "$manifest"
    rm -f "$manifest"
    for d in share/kfacpinn lib/cmake/kfacpinn lib/cmake lib/pkgconfig share include lib; do
        rmdir "$prefix/$d" 2>/dev/null || true
    done
    echo "removed kfacpinn from $prefix"
    exit 0
fi

version() { sed -n "s/^#define KFP_VERSION_$1 \([0-9]*\)$/\1/p" "$root/include/kfacpinn.h"; }
major=$(version MAJOR) minor=$(version MINOR) patch=$(version PATCH)
full="$major.$minor.$patch"
# The Swift runtime linked in (-static-stdlib): the installed library needs no Swift toolchain.
(cd "$root" && swift build -c release -q --product kfacpinn -Xswiftc -static-stdlib --scratch-path .build-dist)
lib="$root/.build-dist/release"
readelf -d "$lib/libkfacpinn.so" | grep -c "SONAME.*\[libkfacpinn.so.$major\]" > /dev/null || { echo "libkfacpinn.so's SONAME is not libkfacpinn.so.$major"; exit 1; }
files=()
put() {   # put SOURCE RELATIVE-DESTINATION [mode]
    install -D -m "${3:-644}" "$1" "$prefix/$2"
    files+=("$2")
}
link() {  # link TARGET RELATIVE-NAME
    ln -sfn "$1" "$prefix/$2"
    files+=("$2")
}
put "$lib/libkfacpinn.so" "lib/libkfacpinn.so.$full" 755
link "libkfacpinn.so.$full" "lib/libkfacpinn.so.$major"
link "libkfacpinn.so.$major" "lib/libkfacpinn.so"
put "$root/include/kfacpinn.h" include/kfacpinn.h
mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/kfacpinn" "$prefix/share/kfacpinn"
pc() {    # pc NAME DESCRIPTION LIBS
    cat > "$prefix/lib/pkgconfig/$1.pc" <<PC
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $1
Description: $2
Version: $full
Cflags: -I\${includedir}
Libs: -L\${libdir} $3 -Wl,-rpath,\${libdir}
PC
    files+=("lib/pkgconfig/$1.pc")
}
pc kfacpinn "Physics-informed neural networks trained with KFAC (C ABI)" -lkfacpinn
if command -v mpicc >/dev/null; then
    "$root/scripts/build-mpi.sh" --lib "$lib" --output "$lib/libkfacpinn_mpi.so.$full" --soname "libkfacpinn_mpi.so.$major"
    put "$lib/libkfacpinn_mpi.so.$full" "lib/libkfacpinn_mpi.so.$full" 755
    rm -f "$lib/libkfacpinn_mpi.so.$full"
    link "libkfacpinn_mpi.so.$full" "lib/libkfacpinn_mpi.so.$major"
    link "libkfacpinn_mpi.so.$major" "lib/libkfacpinn_mpi.so"
    put "$root/include/kfacpinn_mpi.h" include/kfacpinn_mpi.h
    pc kfacpinn-mpi "kfp_communicator over MPI for kfacpinn (build with mpicc)" "-lkfacpinn_mpi -lkfacpinn"
fi
cat > "$prefix/lib/cmake/kfacpinn/kfacpinnConfig.cmake" <<CMAKE
# kfacpinn $full: find_package(kfacpinn) gives the imported target kfacpinn::kfacpinn (and
# kfacpinn::mpi when the MPI communicator is installed).
get_filename_component(_kfacpinn_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET kfacpinn::kfacpinn)
  add_library(kfacpinn::kfacpinn SHARED IMPORTED)
  set_target_properties(kfacpinn::kfacpinn PROPERTIES
    IMPORTED_LOCATION "\${_kfacpinn_prefix}/lib/libkfacpinn.so.$full"
    IMPORTED_SONAME "libkfacpinn.so.$major"
    INTERFACE_INCLUDE_DIRECTORIES "\${_kfacpinn_prefix}/include")
endif()
if(NOT TARGET kfacpinn::mpi AND EXISTS "\${_kfacpinn_prefix}/lib/libkfacpinn_mpi.so.$full")
  add_library(kfacpinn::mpi SHARED IMPORTED)
  set_target_properties(kfacpinn::mpi PROPERTIES
    IMPORTED_LOCATION "\${_kfacpinn_prefix}/lib/libkfacpinn_mpi.so.$full"
    IMPORTED_SONAME "libkfacpinn_mpi.so.$major"
    INTERFACE_LINK_LIBRARIES kfacpinn::kfacpinn)
endif()
set(kfacpinn_VERSION $full)
unset(_kfacpinn_prefix)
CMAKE
cat > "$prefix/lib/cmake/kfacpinn/kfacpinnConfigVersion.cmake" <<CMAKE
# kfacpinn $full: compatible with requests of the same major version, not newer than it.
set(PACKAGE_VERSION "$full")
if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major" AND NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
CMAKE
files+=(lib/cmake/kfacpinn/kfacpinnConfig.cmake lib/cmake/kfacpinn/kfacpinnConfigVersion.cmake)
printf '%s\n' "${files[@]}" share/kfacpinn/install_manifest.txt > "$manifest"
echo "installed kfacpinn $full into $prefix (uninstall: $0 --prefix $prefix --uninstall)"
