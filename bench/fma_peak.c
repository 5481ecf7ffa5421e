// Measures this CPU's f32 FMA peak per core: 512-bit (when the compiler targets AVX-512) and 256-bit
// vectors, 12 independent chains. Build and run: gcc -O3 -march=native fma_peak.c -o fma_peak && ./fma_peak
// (two copies at once: both cores). bench/compare.py builds and runs it itself.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  long n=400000000; double t; float s;
#ifdef __AVX512F__
  __m512 a[12]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(0.999999f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps(i);
  t=now();
  for(long k=0;k<n/10;k++){ for(int i=0;i<12;i++) a[i]=_mm512_fmadd_ps(a[i],b,c);}
  t=now()-t; s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]);
  printf("avx512: %.1f GFLOP/s (%g)\n", (double)(n/10)*12*16*2/t/1e9, s);
#endif
  __m256 x[12]; __m256 y=_mm256_set1_ps(1.0000001f), z=_mm256_set1_ps(0.999999f);
  for(int i=0;i<12;i++) x[i]=_mm256_set1_ps(i);
  t=now();
  for(long k=0;k<n/10;k++){ for(int i=0;i<12;i++) x[i]=_mm256_fmadd_ps(x[i],y,z);}
  t=now()-t; s=0; float o[8]; for(int i=0;i<12;i++){_mm256_storeu_ps(o,x[i]); for(int j=0;j<8;j++) s+=o[j];}
  printf("avx2: %.1f GFLOP/s (%g)\n", (double)(n/10)*12*8*2/t/1e9, s);
}
