"""The installer of SWAG Style Transfer for GIMP: `python3 installer/install.py --help`.

Standard library only, so that it runs with any Python 3.8+ before anything is installed."""
