#!/usr/bin/env python3
"""`meson install` step: copy the default config to its place (DESTDIR
honoured) unless a file is already there, so an operator's edited config
survives a reinstall. Usage: install-config.py SOURCE DEST DEFAULT (where the
pristine default is installed, named in the message)"""
import os
import shutil
import sys


def main():
    src, dest, default = sys.argv[1], sys.argv[2], sys.argv[3]
    destdir = os.environ.get('DESTDIR', '')
    if destdir:
        dest = os.path.join(destdir, os.path.relpath(dest, '/') if os.path.isabs(dest) else dest)
    quiet = os.environ.get('MESON_INSTALL_QUIET')
    if os.path.lexists(dest):
        if not quiet:
            print('Keeping the existing %s; the new default is %s' % (dest, default))
        return 0
    os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
    tmp = dest + '.tmp'
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.rename(tmp, dest)
    if not quiet:
        print('Installing %s to %s' % (src, os.path.dirname(dest)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
