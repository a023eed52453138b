"""shards: the on-disk dataset format shared by ecgrender (writer) and ecgtrain (reader)."""

FORMAT_VERSION = 2  # 2: the card holds card_sha256, the digest of its own content
