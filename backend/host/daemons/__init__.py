"""One applier module per service daemon (Kea, Unbound, radvd, chrony, avahi), each a
``base.DaemonApplier``; registered in ``backend.host.applier.builtin``."""
