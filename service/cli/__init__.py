"""The command line: ``python -m service index | search | collections | documents | jobs``."""
