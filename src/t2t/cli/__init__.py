"""The `t2t` command line: one module per subcommand, each with `register(subparsers)`."""
