// Static binaries for the real node's local images (no dependencies): the
// sandbox ("pause") process and a probe of the in-cluster configuration.
module singleton-operator/test/tools/nodeimage

go 1.26.0
