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
  }]
}
