"""The source values field tables name in ``from:``, one module per kind of record.

* ``source``: how a value declares itself (``Source``) and the registry of one kind (``SourceKind``);
* ``common``: what every kind shares (``record_uid``, ``collected_ms``, ``observables``) and the helpers the
  kinds compute with (``build_user``, ``valid_ip``, ``record_uid``...);
* ``audit``: the values of an audit record and its parsed ``eventInfo`` (kind ``AUDIT``);
* ``directory``: the values of a directory user and of a membership change (``DIRECTORY_USER``, ``MEMBERSHIP``).

A new stream adds a module with its own ``SourceKind``; ``mapping.tables`` binds its mapping files to it.
"""
