"""The networks: equalized layers and FIR filters, mapping, StyleGAN1 (AdaIN), StyleGAN2 (modulated) and
StyleGAN3 (alias-free: synthesis3, filtered_lrelu) synthesis, the generator, and both discriminators."""
