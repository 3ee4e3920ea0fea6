// MetaEngine
