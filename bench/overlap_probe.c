/* Overlap probe for BENCHMARKS.md ("Overlap with backward"): does starting the gradient
 * exchange from a communication thread while the rank still computes save time when the
 * transport is shared memory on the same cores?
 *
 * Two ranks; per step a fixed amount of compute measured in thread CPU time (A ms, "backward
 * up to the last layers' gradients", then B ms, "the first layer's weight gradient"), and the
 * 2-rank halves exchange of nabla's direct reduction over 1,863,690 floats
 * (784-1024-1024-10), split into the last layers' 1,059,850 values and the first layer's rest.
 * Sequential: A, B, then both exchanges. Overlapped: the communication thread exchanges the
 * last layers' part while the main thread computes B, then the rest. Alternated, medians.
 *
 *   mpicc -O2 -o overlap_probe bench/overlap_probe.c -lpthread
 *   OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1 \
 *     mpirun --oversubscribe -np 2 ./overlap_probe [A_ms B_ms]      (default 9.6 1.9)
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <pthread.h>
#include <stdatomic.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void fin(MPI_Request*r){ int f=0,p=0; while(1){MPI_Test(r,&f,MPI_STATUS_IGNORE); if(f)return; p++; if(p<1000) sched_yield(); else {struct timespec ts={0,50000}; nanosleep(&ts,0);} } }
static int rank;
/* exchange halves of [s,e) : rank0 owns first half */
static void xchg(float*t,float*o,float*tmp,int s0,int e0){
  int n=e0-s0,h=n/2,peer=1-rank; int ms=rank==0?s0:s0+h, me=rank==0?s0+h:e0, os=rank==0?s0+h:s0, oe=rank==0?e0:s0+h;
  MPI_Request r[2];
  MPI_Irecv(tmp+ms,me-ms,MPI_FLOAT,peer,1,MPI_COMM_WORLD,&r[0]); MPI_Isend(t+os,oe-os,MPI_FLOAT,peer,1,MPI_COMM_WORLD,&r[1]); fin(&r[0]); fin(&r[1]);
  for(int i=ms;i<me;i++) o[i]=t[i]+tmp[i];
  MPI_Irecv(o+os,oe-os,MPI_FLOAT,peer,2,MPI_COMM_WORLD,&r[0]); MPI_Isend(o+ms,me-ms,MPI_FLOAT,peer,2,MPI_COMM_WORLD,&r[1]); fin(&r[0]); fin(&r[1]);
}
static volatile float sink;
static double tcpu(){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void work(double ms){
  static float a[4096]; double end=tcpu()+ms*1e-3; float acc=0;
  while(tcpu()<end){ for(int i=0;i<4096;i++){ a[i]=a[i]*0.999f+1e-3f; } acc+=a[7]; }
  sink=acc;
}
static float *T,*O,*TMP; static int N, SPLIT;
static atomic_int go=0, done=0;
static void* comm(void*x){ for(;;){ int g; while((g=atomic_load(&go))==0) { struct timespec ts={0,20000}; nanosleep(&ts,0);} if(g<0) return 0; atomic_store(&go,0);
    if(g==1) xchg(T,O,TMP,0,SPLIT); else xchg(T,O,TMP,SPLIT,N); atomic_store(&done,g);} }
int main(int argc,char**argv){
  int prov; MPI_Init_thread(&argc,&argv,MPI_THREAD_SERIALIZED,&prov); MPI_Comm_rank(MPI_COMM_WORLD,&rank);
  N=1863690; SPLIT=N-803840-1024; /* W1+b1 = 803840+1024 last */ SPLIT=1059850; 
  double A=argc>1?atof(argv[1]):9.6, B=argc>2?atof(argv[2]):1.9;
  T=malloc(N*4);O=malloc(N*4);TMP=malloc(N*4); for(int i=0;i<N;i++)T[i]=(i%97)*1e-3f;
  pthread_t th; pthread_create(&th,0,comm,0);
  double ts[2][40];
  for(int it=0;it<40;it++) for(int m=0;m<2;m++){
    /* barrier via comm thread to respect SERIALIZED */
    atomic_store(&done,0); atomic_store(&go,1); while(atomic_load(&done)!=1) sched_yield(); /* warm sync: exchange part 1 */
    double a=now();
    if(m==0){ work(A); work(B); atomic_store(&done,0); atomic_store(&go,1); while(atomic_load(&done)!=1) sched_yield(); atomic_store(&done,0); atomic_store(&go,2); while(atomic_load(&done)!=2) sched_yield(); }
    else { work(A); atomic_store(&done,0); atomic_store(&go,1); work(B); while(atomic_load(&done)!=1) sched_yield(); atomic_store(&done,0); atomic_store(&go,2); while(atomic_load(&done)!=2) sched_yield(); }
    ts[m][it]=now()-a;
  }
  atomic_store(&go,-1); pthread_join(th,0);
  int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
  for(int m=0;m<2;m++){ qsort(ts[m]+5,35,8,cmp); if(rank==0) printf("%s: median %.2f ms, min %.2f ms (compute %.1f+%.1f ms)\n", m?"overlap (comm thread)":"sequential", ts[m][22]*1e3, ts[m][5]*1e3, A,B);}
  MPI_Finalize();
}
