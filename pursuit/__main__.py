from pursuit.cli import main

main()
