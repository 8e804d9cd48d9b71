# Thin aliases for tools/course.py, which needs nothing but python3.
PYTHON ?= python3

.PHONY: setup test course bench clean

setup:
	$(PYTHON) tools/course.py setup

test:
	$(PYTHON) tools/course.py test

course:
	$(PYTHON) tools/course.py course

bench:
	$(PYTHON) tools/course.py bench

clean:
	rm -rf build
