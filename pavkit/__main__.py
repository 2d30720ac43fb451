from pavkit.cli import main

main()
