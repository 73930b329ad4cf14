from pdiff.client import main

main()
