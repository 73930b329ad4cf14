from pdiff.cli import run

run()
