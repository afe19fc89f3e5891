"""The series in Debian: quilt export, Debian's packages, chroots, systemd."""
