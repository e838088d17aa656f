"""rosterdrop: an SFTP drop-folder daemon that imports Clever roster files."""

__version__ = "0.1.0"
