import MetaCommands

await Metactl.main()
