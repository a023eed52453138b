"""shards: the on-disk dataset format shared by ecgrender (writer) and ecgtrain (reader)."""

FORMAT_VERSION = 3  # 2: the card holds card_sha256, the digest of its own content; 3: multi-label datasets
OLDEST_READABLE_VERSION = 2  # version-2 datasets read as they are (single-label)
# A single-label dataset is written as version 2, which it is (format 3 adds only multi-label datasets), so a
# reader of version 2 still reads it; a multi-label one as version 3.
SINGLE_LABEL_VERSION = 2
