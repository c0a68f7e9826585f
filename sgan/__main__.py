"""`python -m sgan ...` runs the same command line as `sgan ...`."""

from sgan.cli import main

if __name__ == "__main__":
    main()
