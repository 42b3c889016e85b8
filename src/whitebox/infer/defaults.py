"""Constants the command lines show in --help, in a module free of TensorFlow and OpenCV so that
--help and usage errors answer at once. `inference` and `export` take them from here.
"""
# The reference's test-time preprocessing: short side capped at 720 pixels (INTER_AREA), then
# the top-left crop to multiples of 8.
MAX_SHORT_SIDE = 720
CROP_MULTIPLE = 8

# Images beyond one window of (core + 2 margins) squared pixels run in tiles. The margin exceeds
# the receptive field of generator plus filter (README.md, "Full resolution"), so tiles join
# without seams; core and margin are multiples of 4 so the network's two stride-2 stages see
# the same pixel grid as the full image.
TILE_CORE = 768
TILE_MARGIN = 96

# Export choices: TFLite weight quantization, and the ONNX opset.
QUANTIZE = ("none", "fp16", "dynamic")
DEFAULT_OPSET = 17

# Runtimes that run the network: `auto` takes the first of RUNTIME_ORDER that is installed.
RUNTIME_ORDER = ("openvino", "onnxruntime", "tf")
RUNTIMES = ("auto", "tf", "openvino", "onnxruntime")

# Precisions cartoonize.py takes: the training ones plus int8, which OpenVINO runs on a generator
# quantized by NNCF (never chosen unless asked for).
INFERENCE_PRECISIONS = ("fp32", "bf16", "fp16", "int8")

# Video frames per network call.
VIDEO_BATCH = 2
