{
  "targets": [{
    "target_name": "fuse",
    "include_dirs": [
      "<!(node -p \"require('path').dirname(require.resolve('napi-macros/package.json'))\")",
    ],
    "cflags": [
      "<!@(pkg-config fuse --cflags)",
      "-g",
      "-O3",
      "-Wall",
    ],
    "libraries": [
      "<!@(pkg-config fuse --libs)",
    ],
    "sources": [
      "fuse-native.c"
    ],
  }, {
    # The libfuse3 low-level binding (lowlevel.c, loaded by lowlevel.js).
    "target_name": "fuse_lowlevel",
    "cflags": [
      "<!@(pkg-config fuse3 --cflags)",
      "-g",
      "-O2",
      "-Wall",
    ],
    "libraries": [
      "<!@(pkg-config fuse3 --libs)",
    ],
    "sources": [
      "lowlevel.c"
    ],
  }]
}
