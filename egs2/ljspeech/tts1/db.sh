# Where the corpus lives: the folder that holds (or will hold) LJSpeech-1.1/.
# Empty (the default here): the recipe runs on the bundled mini corpus in corpora/.
# Set and missing: local/data.sh downloads and extracts LJSpeech-1.1 (2.6 GB) there.
LJSPEECH=${LJSPEECH:-}
