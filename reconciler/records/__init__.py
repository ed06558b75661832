"""Record data: the record endpoints (:mod:`.api`), backups before destructive applies (:mod:`.backup`),
restore (:mod:`.restore`) and export/import between accounts (:mod:`.transfer`)."""
