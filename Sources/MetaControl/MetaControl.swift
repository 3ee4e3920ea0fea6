// MetaControl
