"""``python -m mqlog.cli``: the ``mqlog`` command without its console script."""

from mqlog.cli import main

if __name__ == "__main__":  # importing it (as a walk of the package does) runs nothing
    main()
