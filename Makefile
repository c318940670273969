# Convenience targets; each one sets up the environment it needs first.
.PHONY: install test run corpora

install:
	bash tools/install.sh

test:
	bash tools/test.sh

run:
	bash tools/run_main.sh

# Regenerate the bundled mini corpora (needs the Debian packages espeak-ng and sox).
corpora:
	python3 corpora/make_mini_corpora.py
