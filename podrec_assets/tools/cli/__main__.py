from podrec_assets.tools.cli import main

main()
