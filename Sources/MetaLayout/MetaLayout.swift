// MetaLayout
