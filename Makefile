# needle: build the backends, test, benchmark, train.
#   make            build the C++ backend (and the CUDA one when nvcc is found)
#   make test       install what is missing, build, run the test suite
#   make bench      install what is missing, build, benchmark every kernel vs PyTorch
#   make train      train the colorization network (ARGS="..." passes flags)
#   make asv        the benchmarks under airspeed velocity (make asv-quick: each run once)
#   make asan       the C++ backend under AddressSanitizer + UBSan, with the tests
#   make gpu-check OUT=dir   on a GPU machine: build, test and benchmark cuda, train one epoch

PYTHON ?= python3
BUILD ?= build
JOBS ?= $(shell nproc)
ARGS ?=
OUT ?= gpu-check-results
PYTEST_ARGS ?=

.PHONY: all build deps test bench train asv asv-quick asan gpu-check clean

all: build

# Installs from requirements.txt only when an import is missing, so a machine
# without network that already has the packages (the GPU machine) skips pip.
deps:
	@$(PYTHON) -c "import numpy, PIL, tqdm, matplotlib, pybind11, torch, pytest, hypothesis, pytest_benchmark, skimage" 2>/dev/null \
	  || $(PYTHON) -m pip install -q -r requirements.txt

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=$$(command -v $(PYTHON)) > $(BUILD).log 2>&1 \
	  || (cat $(BUILD).log; exit 1)
	@cmake --build $(BUILD) -j $(JOBS) 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
	@test -n "$$(ls needle/backend_ndarray/ndarray_backend_cpu*.so 2>/dev/null)" || (echo "C++ backend failed to build"; exit 1)

test: deps build
	$(PYTHON) -m pytest tests -q $(PYTEST_ARGS)
	$(PYTHON) -m pytest benchmarks -q --benchmark-disable -p no:cacheprovider $(PYTEST_ARGS)

bench: deps build
	$(PYTHON) -m benchmarks.run $(ARGS)

train: deps build
	$(PYTHON) -m colorization.train $(ARGS)

# --python=same benchmarks the working tree in this Python; asv saves such
# results only under an explicit commit hash, so HEAD's is given (the lead's
# commit the working tree stands on).  Text views: asv show / asv compare.
asv: deps build
	@$(PYTHON) -c "import asv" 2>/dev/null || $(PYTHON) -m pip install -q "asv>=0.6"
	$(PYTHON) -m asv machine --yes
	$(PYTHON) -m asv run --python=same --set-commit-hash=$$(git rev-parse HEAD) $(ASV_MODE) $(ARGS)
	$(PYTHON) -m asv publish

asv-quick: ASV_MODE = --quick
asv-quick: asv

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNEEDLE_SANITIZE=ON -DNEEDLE_CUDA=OFF -DPython_EXECUTABLE=$$(command -v $(PYTHON))
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(PYTHON) -m pytest tests -x -q $(PYTEST_ARGS)
	rm -f needle/backend_ndarray/ndarray_backend_cpu*.so  # build/ would take the sanitized one for up to date
	$(MAKE) build

gpu-check:
	bash benchmarks/gpu_check.sh $(OUT)

clean:
	rm -rf $(BUILD) build-asan needle/backend_ndarray/*.so
