from tldb.cli import cli

cli()
