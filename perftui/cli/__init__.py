"""The command line: flags, subcommands, the headless printer. Imported only by the entry point."""
