package eventlog

// The bucket layout, for tests that craft or damage files.
var (
	BucketEvents     = bucketEvents
	BucketChats      = bucketChats
	BucketOrigins    = bucketOrigins
	BucketPeers      = bucketPeers
	BucketWatermarks = bucketWatermarks
	BucketLog        = bucketLog
	BucketHearsay    = bucketHearsay
)

// ChatIndexBlock is how many sequence numbers one chat index row covers.
const ChatIndexBlock = chatBlock
