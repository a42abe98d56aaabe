from connectus_worker.cli.main import main

main()
