"""The MLflow records: parent and child runs from a driver-side callback, the store, the run map, the writer
thread with deadlines, the spool of what a store could not take, and `sync`."""
