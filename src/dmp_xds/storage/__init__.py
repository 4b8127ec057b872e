"""The only code that touches SQL or disk: tables and migrations, the atomic store of a
submission, stored queries, the DMP records, the access trace, the document files."""
