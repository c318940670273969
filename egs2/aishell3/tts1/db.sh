# Where the corpus lives: the AISHELL-3 folder (with train/ and test/).
# Empty (the default here): the recipe runs on the bundled mini corpus in corpora/.
# Set and missing: local/data.sh downloads and extracts data_aishell3.tgz (19 GB) there.
AISHELL3=${AISHELL3:-}
