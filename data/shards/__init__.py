"""A split of a data set packed into tar shards in the WebDataset layout, and read back.

`writer` packs the videos a loader keeps (frames as their JPEG bytes, poses, label, id) into
`shard-NNNNNN.tar` files plus one `index.json`; `reader.ShardStore` opens them from a folder or
a URL (fetched into a local cache, each rank only the shards it needs); `dataset.ShardVideos`
is the data set over them, whose items equal the folder data set's; `sampler.ShardTrainSampler`
gives each rank of a torchrun job the samples of its own shards. `layout` holds the names and
the index format. See docs/shards.md.
"""
