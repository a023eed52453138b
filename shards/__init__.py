"""shards: the on-disk dataset format shared by ecgrender (writer) and ecgtrain (reader)."""

FORMAT_VERSION = 1
