"""``python -m mqlog.cli``: the ``mqlog`` command without its console script."""

from mqlog.cli import main

if __name__ == "__main__":  # importing the module (walking the package) runs nothing
    main()
