from mokg.cli import main

main()
