"""OneRoster 1.1/1.2 CSV bulk sets: the manifest, finding a set (loose or zipped), reading and
checking each file, and mapping it onto the same roster the Clever files fill."""
