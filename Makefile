# Thin aliases for tools/course.py, which needs nothing but python3.
PYTHON ?= python3

.PHONY: setup test course bench lab clean

setup:
	$(PYTHON) tools/course.py setup

test:
	$(PYTHON) tools/course.py test

course:
	$(PYTHON) tools/course.py course

bench:
	$(PYTHON) tools/course.py bench

lab:
	$(PYTHON) tools/course.py lab

clean:
	rm -rf build
