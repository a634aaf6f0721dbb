#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Empty an installed sfs_ros package directory of its hand-written part before CMake installs
# sfs_ros/ into it again. install(DIRECTORY) only adds and overwrites files, so a module that
# was deleted or renamed in the source tree would otherwise linger in the venv and stay
# importable. What rosidl generated stays: the msg/ package and the type-support libraries and
# their sources (names containing "rosidl_typesupport"); our __init__.py is installed again.
# Usage: clean_installed_package.sh SITE_PACKAGES/sfs_ros [SITE_PACKAGES/sfs_ros ...]
set -euo pipefail

for pkg in "$@"; do
  if [ "$(basename "$pkg")" != sfs_ros ]; then
    printf 'clean_installed_package: refusing %s (not an sfs_ros package directory)\n' "$pkg" >&2
    exit 2
  fi
  [ -d "$pkg" ] || continue
  find "$pkg" -mindepth 1 -maxdepth 1 ! -name msg ! -name '*rosidl_typesupport*' \
    -exec rm -rf -- {} +
done
