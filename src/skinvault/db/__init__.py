"""The vault's database: tables (:mod:`.models`), engines and migrations (:mod:`.engine`)."""
